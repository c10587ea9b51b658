module beyla-sample/h2c

go 1.24
