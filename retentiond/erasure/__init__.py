"""Erasure on request: a data subject asks for their data to be erased.

This first step records a request (:mod:`~retentiond.erasure.requests`: kept in the state
database, audited with a keyed digest of the identity), lists requests with their due dates,
and previews one (:mod:`~retentiond.erasure.preview`: a dry run over the data map with the
same holds and guards as rules, writing nothing).  Executing a request, its certificate and
the daemon's warnings come next; a request's ``state`` (``recorded`` today) is where they
will take it further.
"""
