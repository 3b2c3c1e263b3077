"""Tests of the deployment files: docker-compose.yml, deploy/Dockerfile, the systemd units."""
