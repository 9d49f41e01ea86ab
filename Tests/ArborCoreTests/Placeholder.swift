import Testing

@Test func placeholder_ArborCoreTests() {}
