public let lockLabVersion = "0.1.0"
