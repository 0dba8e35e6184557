"""Sources of catalog posts: feeds (RSS, Atom, JSON Feed) and listing files by URL.

feeds.py turns fetched bytes into plain `FeedEntry` records, discovery.py finds the
feed a web page names, opml.py reads and writes subscription lists. services.py adds,
edits, deletes and imports sources and asks for refreshes; probe.py reads an address
being added. The refresh runs in the job worker (tasks.py): refresh.py refreshes one
source, entries.py turns its entries into posts, schedule.py decides when (and runs
refresh-all). common.py holds what they share; views.py is the admin page at
/admin/sources.
"""
