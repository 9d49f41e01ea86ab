/// Parameter gradients recorded by one tape, kept apart from the parameters until ``merge()``.
///
/// A tape made with ``Tape/init(sink:)`` sends every parameter gradient of its backward pass here
/// (dense contributions and gathered rows, in the order the reverse sweep produces them) instead
/// of adding it to ``Parameter/grad`` or the parameter's sparse rows. ``merge()`` then replays them
/// into the parameters in that same order, so one tape with a sink followed by `merge()` leaves
/// exactly the gradients (bit for bit) that the same tape without a sink would have left.
///
/// Memory: the gradient arrays of the backward pass (they are kept, not copied). Thread rules: a
/// sink belongs to one tape and its thread until `merge()`, which must not run concurrently with
/// any other write to the same parameters.
public final class GradientSink {
    private enum Entry {
        case dense(Parameter, [Float])
        case rows(Parameter, [Int], [Float])
    }
    private var entries: [Entry] = []

    /// An empty sink.
    public init() {}

    /// Number of gradient contributions recorded and not yet merged.
    public var count: Int { entries.count }

    func recordDense(_ parameter: Parameter, _ gradient: [Float]) {
        entries.append(.dense(parameter, gradient))
    }

    func recordRows(_ parameter: Parameter, _ rows: [Int], _ gradient: [Float]) {
        entries.append(.rows(parameter, rows, gradient))
    }

    /// Adds every recorded gradient to its parameter, in recording order, and empties the sink.
    /// O(recorded values).
    public func merge() {
        for entry in entries {
            switch entry {
            case let .dense(p, g): p.accumulateDense(g)
            case let .rows(p, rows, g): p.accumulateRows(rows, g)
            }
        }
        entries.removeAll(keepingCapacity: true)
    }
}
