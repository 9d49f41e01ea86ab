import Testing

@Test func placeholder_ArborModelsTests() {}
