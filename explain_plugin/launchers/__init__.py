"""Model launchers: a model plus its interpreter script, as predictions."""
