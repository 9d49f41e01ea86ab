// ArborData: everything between files on disk (or a seed) and the trainers and benchmark runner.
//
// - Model: `Interaction`, `InteractionLog` (struct of arrays), `Dataset`, `DenseIDMap`, `Vocabulary`.
// - Readers (streaming, byte-level, typed `DataError` naming file and line): `RecBoleReader`
//   (.inter/.item), `TaobaoReader`, `CSVReader`, `AmazonBooksDemo`, `DigineticaReader`,
//   `LeaveLastOutSplit.read`, `SessionSplit.read`, `NPY`, `IDList`.
// - Synthetic data with planted hierarchical interests: `SyntheticCatalog`, `SyntheticUsers`,
//   seeded by `Xoshiro256StarStar` / `SplitMix64`.
// - Protocols: `UserHoldOutSplit` (TDM), `LeaveLastOutSplit` (RecBole/MIND), `Sessions` (SDM),
//   `SessionSplit` (session next-item); `NegativeSampler` for training.
@_exported import ArborCore
