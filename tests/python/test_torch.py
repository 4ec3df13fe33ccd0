"""PyTorch datasets over a 3-node fabric: DataLoader epochs with 4 forked
workers, every sample equal to the origin's bytes."""
import torch
from torch.utils.data import DataLoader

from ucache.torch import ChunkedDataset, FileDataset, PrefixIterableDataset


def _ident(batch):
    return batch


def test_file_dataset_epoch_with_4_workers(files, prefix):
    ds = FileDataset(prefix)
    names = [u[len(prefix):] for u, _ in ds.objects]
    assert sorted(names) == sorted(files)
    loader = DataLoader(ds, batch_size=4, num_workers=4, collate_fn=_ident, shuffle=True)
    got = {}
    for _ in range(2):  # two epochs, new workers each time
        seen = []
        for batch in loader:
            seen += batch
        assert len(seen) == len(files)
        for d in seen:
            got[d] = True
    assert set(got) == set(files.values())


def test_file_dataset_decode_and_tensor(files, prefix):
    ds = FileDataset(prefix + "sub/", as_tensor=True, decode=lambda t: (t.numel(), t.sum()))
    for (uri, size), (n, s) in zip(ds.objects, ds.__getitems__(range(len(ds)))):
        data = files[uri[len(prefix):]]
        assert n == size == len(data)
        assert int(s) == sum(data)


def test_chunked_dataset(files, prefix):
    rec = 100000
    ds = ChunkedDataset(prefix, rec)
    want = []
    for uri, _ in ds.objects:
        data = files[uri[len(prefix):]]
        want += [data[o:o + rec] for o in range(0, len(data), rec)]
    assert len(ds) == len(want)
    loader = DataLoader(ds, batch_size=16, num_workers=4, collate_fn=_ident)
    got = [r for batch in loader for r in batch]
    assert got == want
    full = ChunkedDataset(prefix, rec, drop_last=True)
    assert all(len(full[i]) == rec for i in range(len(full)))


def test_iterable_shards_and_shuffles(files, prefix):
    def epoch(rank, world, e, workers=2):
        ds = PrefixIterableDataset(prefix, rank=rank, world_size=world, seed=7, batch=3,
                                   decode=lambda b: b)
        ds.set_epoch(e)
        return [d for batch in DataLoader(ds, batch_size=2, num_workers=workers,
                                          collate_fn=_ident) for d in batch]

    world = [epoch(r, 2, 0) for r in range(2)]
    assert sorted(world[0] + world[1]) == sorted(files.values())  # each object once
    assert not set(world[0]) & set(world[1])
    assert epoch(0, 2, 0) == world[0]                            # same seed, same order
    ds = PrefixIterableDataset(prefix, seed=7)
    orders = []
    for e in range(3):
        ds.set_epoch(e)
        orders.append([u for u, _ in ds.shard()])
    assert orders[0] != orders[1] or orders[1] != orders[2]      # shuffled per epoch
    assert sorted(orders[0]) == sorted(orders[1])


def test_tensor_samples_in_batches(files, prefix):
    ds = ChunkedDataset(prefix, 4096, drop_last=True, as_tensor=True)
    loader = DataLoader(ds, batch_size=8, num_workers=4)
    total = 0
    for batch in loader:
        assert batch.dtype == torch.uint8 and batch.shape[1] == 4096
        total += batch.shape[0]
    assert total == len(ds)
