import ArborCore
import ArborInference
import ArborTree

/// Why a model cannot be exported from an index or imported into one. Every case names the
/// tensor, spec field or file at fault; `description` is the message the CLI prints.
public enum ModelExchangeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A spec field is missing, out of range or inconsistent (`field`: its JSON path).
    case badSpec(field: String, reason: String)
    /// The spec needs this tensor and the file does not hold it.
    case missingTensor(name: String, expectedShape: [Int])
    /// The file holds a tensor the spec does not describe.
    case unexpectedTensor(name: String)
    /// The tensor's shape differs from the spec's.
    case wrongShape(name: String, expected: [Int], found: [Int])
    /// The tensor's dtype cannot be read as the spec's kind (floats: F32, F16, BF16; ids: I64, U64, I32).
    case wrongDType(name: String, expected: String, found: String)
    /// A tensor's values are not acceptable (a NaN, a negative id, an offset out of range).
    case badValues(name: String, reason: String)
    /// The weights do not fit the index they are imported into (another width, no tree).
    case indexMismatch(path: String, reason: String)
    /// Reading or writing the safetensors file failed.
    case file(SafeTensorsError)
    /// Reading or writing the index failed.
    case index(IndexError)
    /// The imported weights do not form the model the spec names.
    case model(ModelLoadError)
    /// The tree or tensors break an index invariant.
    case invalid(ArborError)
    /// A file operation failed (the new index could not be moved into place).
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .badSpec(field, reason): "spec field '\(field)': \(reason)"
        case let .missingTensor(name, shape): "tensor '\(name)' is missing (the spec needs shape \(shape))"
        case let .unexpectedTensor(name): "tensor '\(name)' is not part of the model the spec describes"
        case let .wrongShape(name, expected, found): "tensor '\(name)' has shape \(found), the spec needs \(expected)"
        case let .wrongDType(name, expected, found): "tensor '\(name)' has dtype \(found), expected \(expected)"
        case let .badValues(name, reason): "tensor '\(name)': \(reason)"
        case let .indexMismatch(path, reason): "\(path): \(reason)"
        case let .file(e): e.description
        case let .index(e): e.description
        case let .model(e): e.description
        case let .invalid(e): e.description
        case let .io(path, reason): "\(path): \(reason)"
        }
    }
}
