print("arbor: work in progress")
