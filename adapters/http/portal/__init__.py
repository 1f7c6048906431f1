"""The customers' web portal: server-rendered pages at / on the HTTP listener."""
