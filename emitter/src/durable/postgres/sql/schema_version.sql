SELECT max(version) FROM {versions}
