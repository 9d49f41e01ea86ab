/// A named tensor for serialisation: the parameter's name, shape and row-major values.
public typealias NamedTensor = (name: String, shape: [Int], values: [Float])

/// Anything that owns parameters (layers, models). Parameter names are unique within a model;
/// layers take a name prefix at init so that nested layers produce paths like "tower.1.weight".
public protocol Module: AnyObject {
    /// Every trainable parameter, in a fixed order (the order of ``namedTensors()``).
    var parameters: [Parameter] { get }
}

extension Module {
    /// The parameters as named tensors, for the index module to store. O(total parameter count)
    /// (values are shared copy-on-write, not copied).
    public func namedTensors() -> [NamedTensor] { ArborNN.namedTensors(of: parameters) }

    /// Loads values saved by ``namedTensors()``; see ``loadNamedTensors(_:into:)``.
    public func load(_ tensors: [NamedTensor]) throws(ArborError) { try loadNamedTensors(tensors, into: parameters) }

    /// Clears the gradients of every parameter.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Total number of trainable values.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// `parameters` as named tensors, in order. O(1) per parameter.
public func namedTensors(of parameters: [Parameter]) -> [NamedTensor] {
    parameters.map { (name: $0.name, shape: $0.shape, values: $0.value) }
}

/// Copies `tensors` into `parameters`, matched by name. All-or-nothing: every check runs before
/// any value is written.
/// - Throws: ``ArborError/invalidArgument(name:reason:)`` naming a parameter with no tensor, a
///   tensor with no parameter, a duplicate name, or a shape that differs;
///   ``ArborError/dimensionMismatch(field:expected:found:)`` if a tensor's values do not fill its shape.
public func loadNamedTensors(_ tensors: [NamedTensor], into parameters: [Parameter]) throws(ArborError) {
    var byName: [String: Int] = [:]
    for (i, t) in tensors.enumerated() {
        guard byName[t.name] == nil else {
            throw .invalidArgument(name: "weights", reason: "tensor \"\(t.name)\" appears twice")
        }
        byName[t.name] = i
    }
    var known = Set<String>()
    for p in parameters {
        known.insert(p.name)
        guard let i = byName[p.name] else {
            throw .invalidArgument(name: "weights", reason: "no tensor for parameter \"\(p.name)\"")
        }
        let t = tensors[i]
        guard t.shape == p.shape else {
            throw .invalidArgument(name: "weights", reason: "\"\(p.name)\" has shape \(t.shape), expected \(p.shape)")
        }
        guard t.values.count == p.count else {
            throw .dimensionMismatch(field: "weights \"\(p.name)\" values", expected: p.count, found: t.values.count)
        }
    }
    for t in tensors where !known.contains(t.name) {
        throw .invalidArgument(name: "weights", reason: "tensor \"\(t.name)\" matches no parameter")
    }
    for p in parameters { p.value = tensors[byName[p.name]!].values }
}
