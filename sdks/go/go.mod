module github.com/juststorage/juststorage/sdks/go

go 1.19
