"""Small network layers shared by generators, critics and feature networks (timm's ``layers``)."""
