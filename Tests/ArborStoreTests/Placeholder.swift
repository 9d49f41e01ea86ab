import Testing

@Test func placeholder_ArborStoreTests() {}
