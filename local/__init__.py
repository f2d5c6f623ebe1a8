"""Local engine: runs the application from template.yaml on moto (in-process or against a moto server)."""
