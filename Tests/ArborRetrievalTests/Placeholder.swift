import Testing

@Test func placeholder_ArborRetrievalTests() {}
