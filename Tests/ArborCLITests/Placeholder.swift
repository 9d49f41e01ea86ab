import Testing

@Test func placeholder_ArborCLITests() {}
