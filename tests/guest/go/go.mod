module umiaktest

go 1.19
