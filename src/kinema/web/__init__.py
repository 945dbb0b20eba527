"""The playground: a static single-page app served by ``kinema serve`` at ``/``."""
