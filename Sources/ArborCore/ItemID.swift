/// The external id of an item, as the user's catalogue spells it (an unsigned 64-bit integer).
///
/// Data readers map numeric tokens to their value and other tokens through a vocabulary; inside an
/// index, items are also known by a dense *item index* `0 ..< itemCount` (their leaf order).
public struct ItemID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The id as the catalogue spells it.
    public var rawValue: UInt64
    /// The decimal id.
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable public init(_ value: UInt64) { self.rawValue = value }
    @inlinable public init(integerLiteral value: UInt64) { self.rawValue = value }
    @inlinable public static func < (a: ItemID, b: ItemID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}
