import { E2EEClient, IndexedDbKeyStore } from '../../index.js';
console.log(E2EEClient, IndexedDbKeyStore);
