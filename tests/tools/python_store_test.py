"""The Python module `larder`: the object store from Python, zero-copy gets
(a memoryview and a numpy array over the shared heap's bytes, no copy),
errors as larder.StoreError, ids as ints or bytes, and a second process
that reads what the first sealed and, killed, is recovered."""
import os
import subprocess
import sys
import tempfile
import unittest

import larder

try:
    import numpy
except ImportError:  # numpy is optional: its tests skip
    numpy = None


class StoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "store.heap")
        self.store = larder.Store(self.path, reserve=1 << 30)

    def tearDown(self):
        self.store.close()
        self.dir.cleanup()

    def test_create_seal_get_release_delete(self):
        buf = self.store.create(7, 1024)
        self.assertFalse(buf.readonly)
        buf[:] = bytes(range(256)) * 4
        self.store.seal(7)
        self.assertIn(7, self.store)
        view = self.store.get(7)
        self.assertTrue(view.readonly)
        self.assertEqual(bytes(view), bytes(range(256)) * 4)
        with self.assertRaises(TypeError):
            view[0] = 1
        self.store.release(7)
        self.store.delete(7)
        self.assertNotIn(7, self.store)
        self.store.check()

    def test_get_is_a_view_of_the_shared_bytes(self):
        b = self.store.create(b"twenty-byte-plasmaid", 16)
        b[:] = b"a" * 16
        self.store.seal(b"twenty-byte-plasmaid")
        first = self.store.get(b"twenty-byte-plasmaid")
        second = self.store.get(b"twenty-byte-plasmaid")
        # Two views of one object: the same memory, not two copies.
        self.assertEqual(first.tobytes(), second.tobytes())
        entry = [o for o in self.store.list() if o["id"] == b"twenty-byte-plasmaid"][0]
        self.assertEqual(entry["refcount"], 2)
        self.assertEqual(entry["state"], "sealed")
        self.store.release(b"twenty-byte-plasmaid")
        self.store.release(b"twenty-byte-plasmaid")

    @unittest.skipIf(numpy is None, "numpy is not installed")
    def test_numpy_reads_without_a_copy(self):
        buf = self.store.create(1, 8 * 1000)
        numpy.frombuffer(buf, dtype=numpy.float64)[:] = numpy.arange(1000, dtype=numpy.float64)
        self.store.seal(1)
        array = numpy.frombuffer(self.store.get(1), dtype=numpy.float64)
        self.assertFalse(array.flags.writeable)
        self.assertFalse(array.flags.owndata)  # a view of the heap's bytes
        self.assertEqual(array.sum(), sum(range(1000)))
        self.store.release(1)

    def test_errors(self):
        with self.assertRaises(larder.StoreError):
            self.store.get(12345)
        self.store.create(3, 8)
        with self.assertRaises(larder.StoreError):
            self.store.create(3, 8)
        with self.assertRaises(larder.StoreError):
            self.store.get(3)  # not sealed yet
        self.store.abort(3)
        with self.assertRaises(ValueError):
            self.store.create(b"x" * 21, 8)
        with self.assertRaises(TypeError):
            self.store.create(1.5, 8)

    def test_another_process_reads_and_a_killed_one_is_recovered(self):
        buf = self.store.create(42, 100)
        buf[:] = b"z" * 100
        self.store.seal(42)
        # A fresh interpreter, as multiprocessing's "spawn" starts one: a
        # forked child shares this process's mapping of the heap and may
        # not write it.
        script = (
            "import larder, signal, sys\n"
            "s = larder.Store(sys.argv[1])\n"
            "ok = bytes(s.get(42)) == b'z' * 100\n"
            "s.create(43, 10)\n"  # left unsealed, with the reference to 42
            "print('y' if ok else 'n', flush=True)\n"
            "signal.pause()\n"
        )
        child = subprocess.Popen([sys.executable, "-c", script, self.path], stdout=subprocess.PIPE,
                                 env=dict(os.environ))
        try:
            self.assertEqual(child.stdout.readline().strip(), b"y")
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        self.assertEqual(self.store.recover(), 1)
        ids = {o["id"]: o for o in self.store.list()}
        self.assertNotIn(43, ids)
        self.assertEqual(ids[42]["refcount"], 0)
        self.store.check()


if __name__ == "__main__":
    unittest.main(verbosity=2)
