import { storageContract } from '../contract.js';
import { MemoryStorage } from './memory-storage.js';

storageContract('MemoryStorage', async () => {
  const storage = new MemoryStorage();
  return { storage, cleanup: () => storage.close() };
});
