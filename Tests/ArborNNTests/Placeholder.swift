import Testing

@Test func placeholder_ArborNNTests() {}
