"""Recipes that ship with edgecnn; models/ in the source tree links here."""
