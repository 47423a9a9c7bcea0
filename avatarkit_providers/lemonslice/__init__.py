"""LemonSlice for avatarkit. Light: the implementation loads when used."""
