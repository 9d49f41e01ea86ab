@_exported import ArborCore
