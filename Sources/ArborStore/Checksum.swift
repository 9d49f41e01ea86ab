/// FNV-1a, 64-bit (Fowler–Noll–Vo): the checksum of every large value Arbor stores.
///
/// Not cryptographic: it detects torn writes, truncation and bit rot, not tampering. Streaming:
/// feeding the bytes in several pieces gives the same value as feeding them at once.
public struct FNV1a64: Sendable, Equatable {
    /// The running hash; ``value`` after the last update.
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01B3

    /// A hash of no bytes (the FNV offset basis).
    public init() {}

    /// Mixes `bytes` into the hash. O(count).
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for byte in bytes {
            h = (h ^ UInt64(byte)) &* Self.prime
        }
        value = h
    }

    /// Mixes the bytes of `value` (as stored: little-endian elements) into the hash.
    public mutating func update(_ value: some StoreValue) {
        value.withValueBytes { (p: UnsafeRawBufferPointer) in update(p) }
    }

    /// The checksum of the bytes of `value`.
    public static func checksum(of value: some StoreValue) -> UInt64 {
        var h = FNV1a64()
        h.update(value)
        return h.value
    }
}
