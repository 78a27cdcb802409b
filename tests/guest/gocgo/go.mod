module umiakcgo

go 1.19
