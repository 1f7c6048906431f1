"""The FTP/FTPS drop: the server, customers' home folders, batch jobs and their report
files."""
