import Testing

@Test func placeholder_ArborMathTests() {}
