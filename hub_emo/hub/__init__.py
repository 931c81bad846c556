"""The Hub stage: a local Hub server (``server``, ``storage``, ``xet``) and publishing (``publish``).

Nothing is imported here, so that starting the server never pulls in torch or transformers.
"""
