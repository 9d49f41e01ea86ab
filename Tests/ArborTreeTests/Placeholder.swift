import Testing

@Test func placeholder_ArborTreeTests() {}
