import Testing

@Test func placeholder_ArborEvalTests() {}
