/// Row normalisation helpers.
public enum Normalization {
    /// Scales every row of `matrix` to unit L2 norm (rows of norm 0 stay 0). O(n · d).
    public static func normalizeRows(_ matrix: inout Matrix) {
        let d = matrix.cols
        guard d > 0 else { return }
        matrix.withUnsafeMutableBufferPointer { v in
            for r in 0..<(v.count / d) {
                var s: Float = 0
                for c in 0..<d { let x = v[r * d + c]; s += x * x }
                guard s > 0 else { continue }
                let inv = 1 / s.squareRoot()
                for c in 0..<d { v[r * d + c] *= inv }
            }
        }
    }

    /// The L2 norm of each row. O(n · d).
    public static func rowNorms(_ matrix: Matrix) -> [Float] {
        let d = matrix.cols
        var out = [Float](repeating: 0, count: matrix.rows)
        guard d > 0 else { return out }
        matrix.withUnsafeBufferPointer { v in
            for r in 0..<matrix.rows {
                var s: Float = 0
                for c in 0..<d { let x = v[r * d + c]; s += x * x }
                out[r] = s.squareRoot()
            }
        }
        return out
    }
}
