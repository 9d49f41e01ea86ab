/// Why a safetensors file cannot be read or written. Every case names the file and, where one is
/// at fault, the tensor; `description` is the message the CLI prints.
public enum SafeTensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file cannot be opened, read or written.
    case io(path: String, reason: String)
    /// The file ends before its 8-byte header length, its header, or a tensor's data.
    case truncated(path: String, reason: String)
    /// The JSON header is not a valid safetensors header.
    case badHeader(path: String, reason: String)
    /// One tensor's entry is malformed (unknown dtype, negative dimension, offsets that do not fit
    /// its shape, overlap another tensor or run past the data).
    case badTensor(path: String, name: String, reason: String)
    /// The tensor exists but its dtype is not one the caller can use.
    case wrongDType(name: String, found: String, expected: String)
    /// The tensor is not in the file.
    case missingTensor(name: String)

    public var description: String {
        switch self {
        case let .io(path, reason): "\(path): \(reason)"
        case let .truncated(path, reason): "\(path): truncated safetensors file: \(reason)"
        case let .badHeader(path, reason): "\(path): bad safetensors header: \(reason)"
        case let .badTensor(path, name, reason): "\(path): tensor '\(name)': \(reason)"
        case let .wrongDType(name, found, expected): "tensor '\(name)' has dtype \(found), expected \(expected)"
        case let .missingTensor(name): "no tensor '\(name)'"
        }
    }
}
