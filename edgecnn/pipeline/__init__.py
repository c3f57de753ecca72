"""The whole job in one command: a recipe run stage by stage, resumably (``edgecnn pipeline``, ``edgecnn demo``)."""
