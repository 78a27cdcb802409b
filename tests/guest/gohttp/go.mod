module umiakgohttp

go 1.19
