"""PyTorch datasets that read through the fabric.

    from ucache.torch import FileDataset
    ds = FileDataset("file:///data/train/", decode=my_decode)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=4)

- FileDataset: map-style, one sample per object (a prefix's listing or a
  list of URIs);
- ChunkedDataset: map-style, one sample per fixed-size record of the
  objects (the last record of an object may be short: drop_last keeps it
  out);
- PrefixIterableDataset: iterable, the objects under a prefix sharded by
  rank (torch.distributed, else RANK / WORLD_SIZE) and by DataLoader
  worker, shuffled per epoch from a seed (set_epoch).

A batch of indices (DataLoader's __getitems__) is one read_many: its
reads are in flight together.  decode(data) turns a sample's bytes into
what the model takes (default: the bytes; as_tensor=True: a uint8 tensor
the bytes were read straight into).  Each worker process makes its own
client (ucache.Client is fork-safe); a dataset pickles as its settings.
"""
import os
import random

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .client import Client


class _Reads:
    """What every dataset shares: a client made on first use in each
    process, and turning read results into samples."""

    def __init__(self, client, client_options, decode, as_tensor):
        self._client = client
        self._client_options = dict(client_options)
        self.decode = decode
        self.as_tensor = as_tensor

    @property
    def client(self):
        if self._client is None:
            self._client = Client(**self._client_options)
        return self._client

    def _read_batch(self, spans):
        """spans: [(uri, offset, length)] -> samples, read together."""
        if self.as_tensor:
            bufs = [torch.empty(length, dtype=torch.uint8) for _, _, length in spans]
            got = self.client.read_many([(u, o, n, b) for (u, o, n), b in zip(spans, bufs)])
            data = [b[:g] if g != b.numel() else b for b, g in zip(bufs, got)]
        else:
            data = self.client.read_many([(u, o, n, None) for u, o, n in spans])
        if self.decode is None:
            return data
        return [self.decode(d) for d in data]


def _objects(client, source):
    """[(uri, size)] of a prefix (str) or of a list of URIs, in URI order."""
    if isinstance(source, str):
        objs = [(o["uri"], o["size"]) for o in client.list(source)]
    else:
        objs = [(u, client.size(u)) for u in source]
    return sorted(objs)


class FileDataset(_Reads, Dataset):
    """One sample per object: FileDataset(prefix_or_uris, decode=None,
    as_tensor=False, client=None, **client_options)."""

    def __init__(self, source, decode=None, as_tensor=False, client=None, **client_options):
        _Reads.__init__(self, client, client_options, decode, as_tensor)
        self.objects = _objects(self.client, source)

    def __len__(self):
        return len(self.objects)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):
        return self._read_batch([(self.objects[i][0], 0, self.objects[i][1])
                                 for i in indices])


class ChunkedDataset(_Reads, Dataset):
    """One sample per record_size bytes of each object, in URI order."""

    def __init__(self, source, record_size, decode=None, as_tensor=False, drop_last=False,
                 client=None, **client_options):
        _Reads.__init__(self, client, client_options, decode, as_tensor)
        if record_size <= 0:
            raise ValueError("record_size must be positive")
        self.record_size = record_size
        self.objects = _objects(self.client, source)
        self.records = []   # (object index, offset, length)
        for k, (_, size) in enumerate(self.objects):
            for off in range(0, size, record_size):
                n = min(record_size, size - off)
                if n == record_size or not drop_last:
                    self.records.append((k, off, n))

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):
        spans = []
        for i in indices:
            k, off, n = self.records[i]
            spans.append((self.objects[k][0], off, n))
        return self._read_batch(spans)


def _rank_world():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class PrefixIterableDataset(_Reads, IterableDataset):
    """The objects under prefix, each a sample, sharded by rank and worker,
    shuffled each epoch (seed + epoch) when shuffle; batch: objects read
    together (one read_many)."""

    def __init__(self, prefix, decode=None, as_tensor=False, shuffle=True, seed=0,
                 batch=16, rank=None, world_size=None, client=None, **client_options):
        _Reads.__init__(self, client, client_options, decode, as_tensor)
        self.prefix = prefix
        self.shuffle = shuffle
        self.seed = seed
        self.batch = max(1, batch)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.objects = _objects(self.client, prefix)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def shard(self):
        """This rank's and this worker's objects for the epoch, in order."""
        order = list(range(len(self.objects)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        rank, world = _rank_world()
        rank = self.rank if self.rank is not None else rank
        world = self.world_size if self.world_size is not None else world
        order = order[rank::world]
        info = get_worker_info()
        if info is not None:
            order = order[info.id::info.num_workers]
        return [self.objects[i] for i in order]

    def __iter__(self):
        objs = self.shard()
        for s in range(0, len(objs), self.batch):
            part = objs[s:s + self.batch]
            yield from self._read_batch([(u, 0, n) for u, n in part])
