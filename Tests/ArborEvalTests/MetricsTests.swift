import Testing
@testable import ArborEval
