"""Serverlesspresso domain package, shared by every Lambda function (deployed as the SharedLayer)."""
