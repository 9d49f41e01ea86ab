import Testing

@Test func placeholder_ArborDataTests() {}
