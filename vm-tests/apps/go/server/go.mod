module beyla-sample/server

go 1.22
