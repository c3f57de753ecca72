"""Device profiles shipped with edgecnn (one YAML per target); read by ``edgecnn.runtime.profile.devices``.

They live inside the package so that an installed edgecnn finds them as well as a source
checkout; ``devices/`` at the top of the repository links here.
"""
