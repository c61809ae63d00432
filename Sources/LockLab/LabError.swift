// Errors the lab reports to a user: each prints as one line naming the bad value and what is accepted.

public enum LabError: Error, CustomStringConvertible, Equatable {
    case badValue(flag: String, value: String, accepted: String)
    case impossible(String)
    case io(String)

    public var description: String {
        switch self {
        case let .badValue(flag, value, accepted):
            return "\(flag): '\(value)' is not valid; expected \(accepted)"
        case let .impossible(why):
            return why
        case let .io(why):
            return why
        }
    }
}
