"""Backup targets (a directory, `s3://bucket/prefix`): `application.backup_ports.BackupTarget`."""
