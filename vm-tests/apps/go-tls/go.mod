module beyla-sample/go-tls

go 1.19
