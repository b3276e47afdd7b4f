return { namespaces = "oops", registries = { { secret = "Bad_Name", server = "", username = "a:b", password = "x", bogus = 1 }, 42 } }
