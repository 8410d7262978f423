"""The Hugging Face Hub and its cache, knowing nothing of the zoo: the names the Hub accepts (`ids`), the cache's
layout and vitamin's manifest beside it (`cache`), fetching one file resumably and hashed (`fetch`), and sha256
of large files (`hashing`). Nothing here imports huggingface_hub at import time."""
