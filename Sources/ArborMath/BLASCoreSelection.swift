/// What Arbor did about OpenBLAS's kernels at its first BLAS call (``BLAS/coreSelection``).
///
/// OpenBLAS names its kernel sets after CPU cores ("Prescott", "Haswell", "SkylakeX", ...). An
/// OpenBLAS release older than the CPU falls back to generic SSE3 kernels; Arbor then switches it to
/// the best set the CPU's features allow. The choice depends only on the CPU's features and the
/// OpenBLAS build, so it is the same on every run of a machine.
public struct BLASCoreSelection: Sendable, Equatable, CustomStringConvertible {
    /// Why the kernels in use are what they are.
    public enum Outcome: String, Sendable, Equatable {
        /// OpenBLAS's own choice, which is not a generic fallback (or the CPU has nothing better).
        case kept
        /// Arbor replaced OpenBLAS's generic fallback by kernels the CPU can run.
        case upgraded
        /// `OPENBLAS_CORETYPE` is set; the user's choice stands.
        case userChoice
        /// The BLAS has no run-time kernel choice (not OpenBLAS, or built for one core).
        case notDynamic
        /// OpenBLAS was built without the better kernels; its own choice stands.
        case refused
    }

    /// The kernel set OpenBLAS chose by itself when it loaded.
    public let detected: String
    /// The kernel set in use.
    public let inUse: String
    /// What happened.
    public let outcome: Outcome

    /// A selection record.
    public init(detected: String, inUse: String, outcome: Outcome) {
        self.detected = detected
        self.inUse = inUse
        self.outcome = outcome
    }

    /// E.g. "SkylakeX (OpenBLAS detected Prescott, a generic fallback; upgraded by CPU features)".
    public var description: String {
        switch outcome {
        case .upgraded: return "\(inUse) (OpenBLAS detected \(detected), a generic fallback; upgraded by CPU features)"
        case .userChoice: return "\(inUse) (OPENBLAS_CORETYPE)"
        case .refused: return "\(inUse) (OpenBLAS build has no faster kernels for this CPU)"
        case .kept, .notDynamic: return inUse
        }
    }
}
