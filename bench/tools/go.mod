module beyla-bench/tools

go 1.21
